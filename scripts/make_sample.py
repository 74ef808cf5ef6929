"""Write the sample mailbox that ships with mailnet (src/mailnet/data/sample/).

The people and messages are invented for mailnet. "Me" is Sam Rivera
<sam@rivera.example>, who owns the mailbox: INBOX.mbox holds what Sam
received, Sent.mbox what Sam sent, so the demo needs no configuration.

Two years of mail (2023-01 to 2024-12) in which every reciprocity pattern
shows up in at least one contact, next to allies and ordinary contacts. Each
message is plainly a request, an offer, a thanks, a sales pitch, or several,
so a classifier can judge it from the text; the `tags` field holds the
intended answer (tests use it; the demo classifies the text).
Run `python scripts/make_sample.py` after editing; the output is committed.
"""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "mailnet" / "data" / "sample"
ME = "Sam Rivera <sam@rivera.example>"
START = datetime(2023, 1, 2, 9, 0, tzinfo=UTC)
AS_OF = date(2025, 1, 15)  # the demo's "today": two weeks after the last message
LIST = "SDR Makers <makers@lists.sdr.example>"
LIST_HEADERS = {"List-Id": "SDR Makers <makers.lists.sdr.example>",
                "List-Post": "<mailto:makers@lists.sdr.example>"}


@dataclass
class Mail:
    key: str  # short name, for In-Reply-To links within this file
    day: float  # days after START
    sender: str
    to: str
    subject: str
    text: str
    reply_to: str | None = None  # key of the message answered
    headers: dict[str, str] | None = None
    tags: tuple[str, ...] = ()  # what the text is: request, offer, thanks, sales


PEOPLE = {
    # allies: both ask, both give, both thank, both answer
    "dana": "Dana Okafor <dana.okafor@lumen.example>",
    "kofi": "Kofi Mensah <kofi@mensah.example>",
    "maria": "Maria Santos <maria@santos.example>",
    # one pattern each (a taker often shows several)
    "jordan": "Jordan Pike <jordan@pike-ventures.example>",  # only writes when asking
    "priya": "Priya Nair <priya@nair-data.example>",  # you give more than you get
    "victor": "Victor Hale <victor@halecorp.example>",  # never says thanks
    "chris": "Chris Dunn <chris.dunn@fastmail.example>",  # vanishes after help
    "hana": "Hana Kim <hana.kim@uni-sdr.example>",  # vanishes after help, on a list
    "brad": "Brad Kessler <brad@leadsurge.example>",  # only sales pitches
    "elena": "Elena Marsh <elena.marsh@bigco.example>",  # ignores you
    "tom": "Tom Becker <tom@becker.example>",  # surfaces only when in need
    "ines": "Ines Duarte <ines@duarte.example>",  # lost touch (an ally, until March 2024)
    # ordinary contacts and a bulk sender
    "ravi": "Ravi Patel <ravi.patel@lumen.example>",
    "omar": "Omar Haddad <omar@haddad.example>",
    "lee": "Lee Chen <lee@chen-consulting.example>",
    "news": "GrowthHub <noreply@growthhub.example>",
    # cooled: warm two-way mail all 2023, a trickle from 2024-Q1 on (the trajectory)
    "noor": "Noor Aziz <noor@aziz.example>",
    # a favour you never returned: Noah helped you each time you asked; you never
    # thanked him, never gave anything back, and left his one ask unanswered
    "noah": "Noah Brooks <noah@brooks-lab.example>",
}
BULK = {"Precedence": "bulk", "List-Unsubscribe": "<mailto:unsubscribe@growthhub.example>"}

# A step of a thread: (who writes: "them" or "me", tags, body). The thread's
# first step opens it; each later step answers the one before, a day or so later.
Step = tuple[str, str, str]


def first_name(who: str) -> str:
    return who.split()[0]


MAILS: list[Mail] = []


def thread(person: str, day: float, subject: str, *steps: Step, on_list: bool = False) -> None:
    """Add one conversation between Sam and `person`, starting `day` days after START."""
    them = PEOPLE[person]
    parent: str | None = None
    for n, (side, tags, body) in enumerate(steps):
        key = f"{person}-{int(day)}-{n}"
        sender, to = (them, ME) if side == "them" else (ME, them)
        greet = "Sam" if side == "them" else first_name(them)
        sign = first_name(them) if side == "them" else "Sam"
        MAILS.append(Mail(
            key, day + n * 1.1 + (0.07 * (len(MAILS) % 5)), sender, LIST if on_list else to,
            subject if n == 0 else f"Re: {subject}", f"Hi {greet},\n\n{body}\n\n{sign}",
            reply_to=parent, headers=LIST_HEADERS if on_list else None,
            tags=tuple(tags.split()),
        ))
        parent = key


def them(tags: str, body: str) -> Step:
    return ("them", tags, body)


def me(tags: str, body: str) -> Step:
    return ("me", tags, body)


# --- allies ------------------------------------------------------------------------------
ALLY_TOPICS = {
    "dana": [
        ("Intro to the data team?", "an introduction to someone on your data team",
         "I've copied Priya, who leads it; she's expecting your note."),
        ("dbt or Airflow?", "your view on dbt versus Airflow for our nightly jobs",
         "we moved to dbt last year: here's our migration write-up, docs.example/dbt-notes."),
        ("Warehouse costs", "the query you used to find your most expensive warehouse tables",
         "here's the SQL, it reads the usage views: docs.example/cost-sql."),
        ("Hiring loop", "the interview rubric you mentioned for analytics engineers",
         "attached is our rubric with the scoring guide: docs.example/rubric."),
        ("Conference talk", "feedback on my talk outline for DataConf",
         "the outline is strong; I'd move the demo earlier and cut slide 9."),
    ],
    "kofi": [
        ("Release checklist", "a look at our release checklist before 2.0",
         "I added three items we learned the hard way; see the comments in your doc."),
        ("CI flakiness", "how you tamed the flaky integration tests",
         "we quarantine them with a retry label; the script is at git.example/kofi/quarantine."),
        ("Maintainer burnout", "a chat about sharing maintainer duties",
         "here's the rotation schedule we use, free to copy: docs.example/rotation."),
        ("Packaging question", "advice on publishing wheels for ARM",
         "cibuildwheel handles it; my config is at git.example/kofi/wheels."),
        ("Grant application", "a reference letter for the open-source grant",
         "the letter is attached, signed; good luck with the committee."),
    ],
    "maria": [
        ("Salary benchmarks", "the salary benchmarks for staff engineers you collected",
         "here's the spreadsheet with 2023 numbers: docs.example/bands."),
        ("Mentoring", "advice on mentoring a new team lead",
         "I'd start with weekly 1:1s and this reading list: docs.example/lead-reads."),
        ("Job lead", "whether you know anyone hiring platform engineers",
         "a friend's startup is hiring; I've passed your name along to their CTO."),
        ("Reference check", "a reference for my move to the platform team",
         "I wrote the reference this morning and sent it to your manager."),
        ("Offsite ideas", "ideas for a one-day team offsite",
         "we did a build-something day; the agenda is at docs.example/offsite."),
    ],
}


def ally(person: str, days: list[float]) -> None:
    """Alternate who asks: the asker asks, the other answers, the asker thanks."""
    topics = ALLY_TOPICS[person]
    for n, day in enumerate(days):
        subject, ask, answer = topics[n % len(topics)]
        if n >= len(topics):
            subject = f"{subject} (again)"
        ask_text = f"Could you help me with {ask}? I'd really appreciate it."
        answer_text = f"Happy to help: {answer}"
        thanks_text = "Thank you so much, that's exactly what I needed."
        if n % 2 == 0:
            thread(person, day, subject, them("request", ask_text), me("offer", answer_text),
                   them("thanks", thanks_text))
        else:
            thread(person, day, subject, me("request", ask_text), them("offer", answer_text),
                   me("thanks", thanks_text))


ally("dana", [5, 62, 130, 190, 255, 320, 385, 450, 510, 575, 640, 700])
ally("kofi", [20, 95, 170, 240, 300, 370, 440, 505, 570, 630, 690])
ally("maria", [35, 110, 180, 250, 330, 400, 470, 545, 615, 680])

# --- only writes when asking (and vanishes, and never thanks) -------------------------------
JORDAN_ASKS = [
    ("Quick favour", "Can you review my pitch deck before Friday's investor call?",
     "Done: comments are in the deck; the market slide needs real numbers."),
    ("Intro?", "Could you introduce me to your friend at Lumen? I want to sell them our tool.",
     "I've forwarded your note to Dana with a short intro."),
    ("Pricing page", "Can you look at our pricing page and tell me what's wrong with it?",
     "Three tiers is one too many; here's a sketch of a simpler page."),
    ("Beta testers", "Could you find me five beta testers from your network by next week?",
     "I posted it in two groups I'm in; here are the replies so far."),
    ("Hiring", "Can you send me your hiring pipeline template? We need one fast.",
     "Here's the template we use: docs.example/pipeline."),
    ("Advisor?", "Would you join as an advisor, unpaid for now? Need an answer this week.",
     "Not formally, but here's an hour of notes on your go-to-market plan."),
    ("Office space", "Do you know of any cheap office space near you? Please ask around.",
     "Two options from friends: the co-op on Elm Street and the library's maker space."),
    ("Demo day", "Can you come to our demo day and bring people with budgets?",
     "I can't make it, but I sent the invite to four people who might."),
    ("Contract review", "Could you read this contract and tell me if the IP clause is ok?",
     "I'm no lawyer, but clause 7 gives away all IP; here's a suggested rewording."),
]
for n, (day, (subject, ask, answer)) in enumerate(
        zip([12, 80, 150, 215, 290, 360, 430, 505, 585], JORDAN_ASKS, strict=True)):
    steps = [them("request", ask), me("offer", answer)]
    if n % 3 == 1:
        steps += [them("request", "OK. Can you also do the same for the next version?"),
                  me("offer", "Sure, done: notes are in the new version.")]
    thread("jordan", day, subject, *steps)

# --- you give more than you get ------------------------------------------------------------
PRIYA_GIFTS = [
    ("Article you'd like", "I thought of you when I read this piece on data contracts: "
     "docs.example/contracts. Sharing in case it helps your team."),
    ("Conference ticket", "I have a spare ticket for DataConf; it's yours if you want it."),
    ("Intro to a VP", "I've introduced you to Kofi's VP of data, who is hiring your role."),
    ("Notes from the meetup", "Here are my notes from the analytics meetup, with the slides."),
    ("Book recommendation", "Here's my copy of 'Designing Data-Intensive Applications'; "
     "I'll drop it off on Friday, keep it."),
    ("Job lead", "A friend's team is hiring a data lead; I've sent them your CV already."),
    ("Template", "Here's the quarterly planning template I built, free to reuse."),
]
for day, (subject, gift) in zip([40, 140, 230, 330, 420, 520, 660], PRIYA_GIFTS, strict=True):
    thread("priya", day, subject, me("offer", gift),
           them("thanks", "Thanks Sam, that's really kind of you."))
thread("priya", 470, "Dashboard tip",
       them("offer", "Here's a dashboard trick I use for churn: docs.example/churn-trick."),
       me("thanks", "Thank you, I'll try it this week."))

# --- never says thanks --------------------------------------------------------------------
VICTOR = [
    ("them", "Terraform state", "How do you split Terraform state across teams? Need a plan.",
     "We use one state per team, with remote state lookups; here's our layout."),
    ("them", "On-call rota", "Can you send me your on-call rota and escalation policy?",
     "Here's the rota and the policy doc: docs.example/oncall."),
    ("me", "Postgres upgrade", "Could you share how you did the Postgres 15 upgrade?",
     "We used logical replication; the runbook is at docs.example/pg15."),
    ("them", "Vendor choice", "Which observability vendor would you pick at our size?",
     "For your size, the open-source stack is enough; here's a cost comparison."),
    ("them", "Incident review", "Could you review our incident write-up before it goes out?",
     "Reviewed: the timeline is good, the root cause needs one more why."),
    ("me", "Load testing", "Do you have a load-testing script for the API gateway?",
     "Yes, here's the k6 script we use: git.example/victor/k6."),
]
for day, (asker, subject, ask, answer) in zip([30, 110, 190, 270, 350, 560], VICTOR,
                                              strict=True):
    if asker == "them":
        thread("victor", day, subject, them("request", ask), me("offer", answer),
               them("", "OK, noted. We'll go with that."))
    else:
        thread("victor", day, subject, me("request", ask), them("offer", answer),
               me("thanks", "Thanks Victor, much appreciated."))

thread("victor", 430, "Postmortem template",
       them("offer", "Sharing our postmortem template, in case it's useful: docs.example/pm."),
       me("thanks", "Thanks Victor, that's useful."))

# --- vanishes after help (directly, and on a mailing list) --------------------------------
CHRIS = [
    (25, "Resume help", "Could you look over my resume before I apply to Lumen?",
     "Done: tighten the summary and lead with the migration project."),
    (160, "Portfolio site", "Can you tell me why my portfolio site is so slow?",
     "Your images are 8 MB each; compress them and it loads in a second."),
    (400, "Interview prep", "Could you do a mock system-design interview with me this week?",
     "Here's a mock question with my model answer and what interviewers look for."),
]
for day, subject, ask, answer in CHRIS:
    thread("chris", day, subject, them("request", ask), me("offer", answer))
thread("chris", 90, "Meetup invite",
       them("offer", "We're hosting a Python meetup next month; here's a free seat for you."),
       me("thanks", "Thanks Chris, I'll be there."),
       them("thanks", "Thanks for coming, Sam, people loved your questions."))
thread("chris", 300, "Job board",
       them("offer", "Sharing a job board for remote roles I found useful: jobs.example."))
thread("chris", 500, "Article on caching",
       them("offer", "Here's an article on HTTP caching that you might like: docs.example/cache."))

thread("hana", 140, "B210 drops samples at 20 Msps",
       them("request", "My B210 drops samples at 20 Msps on USB 3. Can anyone help me fix it?"),
       me("offer", "Raise the USB buffer with num_recv_frames=512; that fixed it for me."),
       on_list=True)
thread("hana", 420, "GNU Radio 3.10 build fails",
       them("request", "Building GNU Radio 3.10 fails on Ubuntu 24.04. How do I fix this?"),
       me("offer", "Install python3-pybind11 from the archive, not pip; then it builds."),
       on_list=True)
thread("omar", 260, "Antenna for 2.4 GHz",
       them("request", "Which antenna would you recommend for 2.4 GHz tests on a budget?"),
       me("offer", "A cheap dual-band dipole works well; here's the one I use."),
       them("thanks", "Thanks Sam, ordered it, works great."), on_list=True)

# --- only sales pitches -------------------------------------------------------------------
BRAD = [
    (45, "Sam, 3x your pipeline?", "LeadSurge books 20 qualified meetings a month for teams "
     "like yours. Buy the starter plan this week and get 30% off."),
    (170, "Following up: LeadSurge", "Our new AI outreach package is on sale: $499/month, "
     "cancel anytime. Book a demo today."),
    (350, "Last chance: 40% off", "Our biggest discount of the year ends Friday. Upgrade to "
     "LeadSurge Pro and close more deals."),
    (480, "Webinar seats", "Reserve a paid seat at our growth webinar: only $99, "
     "limited seats."),
    (650, "Year-end offer", "Sign a yearly LeadSurge contract before Dec 31 and get two "
     "months free."),
]
for day, subject, pitch in BRAD:
    thread("brad", day, subject, them("sales", pitch))
for n, day in enumerate([15, 130, 250, 370, 490, 610]):
    MAILS.append(Mail(f"news-{n}", day, PEOPLE["news"], ME, f"GrowthHub deals #{n + 1}",
                      "Grow your pipeline 10x this quarter. Book a demo of GrowthHub today "
                      "and get 30% off the annual plan.", headers=BULK, tags=("sales",)))

# --- ignores you --------------------------------------------------------------------------
thread("elena", 50, "Reference?",
       me("request", "Would you be a reference for me? I'm applying for a staff role."))
thread("elena", 150, "Coffee?",
       me("request", "Could we grab a coffee next month? I'd love your advice on my career."))
thread("elena", 260, "Article on team design",
       me("offer", "Here's an article on team topologies I think you'd enjoy: "
          "docs.example/topologies."),
       them("thanks", "Thanks Sam."))
thread("elena", 380, "Intro request",
       me("request", "Could you introduce me to your head of platform? Ten minutes is enough."))
thread("elena", 520, "Congrats!",
       me("offer", "Congratulations on the promotion! If you need help hiring, I can send "
          "you three strong candidates."))
thread("elena", 640, "Quick question",
       me("request", "Do you still use the vendor we discussed? Could you tell me how it went?"))

# --- surfaces only when in need -----------------------------------------------------------
TOM = [
    (10, "Long time!", "I need a favour: could you lend me your camping gear for a weekend?",
     "Sure, pick it up Saturday; the tent is in the garage."),
    (220, "Hey stranger", "Could you help me move next weekend? I need someone with a car.",
     "Yes, I'll bring the car on Saturday at nine."),
    (420, "Quick one", "Can you recommend a good accountant? Need one before the deadline.",
     "Here's mine: Ana at ledger.example, tell her I sent you."),
    (640, "Long time no see", "Could you write me a recommendation on LinkedIn? I'm job hunting.",
     "Done, it's on your profile now."),
]
for day, subject, ask, answer in TOM:
    thread("tom", day, subject, them("request", ask), me("offer", answer),
           them("thanks", "Thanks, you're a lifesaver."))

# --- lost touch: an ally every month or so, silent since March 2024 -------------------------
INES = [
    ("Book club pick", "Here's next month's book club pick; I saved you a copy."),
    ("Trail run", "I found a new trail route; here's the map: maps.example/ridge."),
    ("Recipe", "Here's the curry recipe you asked about."),
    ("Photos", "Here are the photos from the hike, all in one album."),
]
for n, day in enumerate(range(8, 440, 36)):
    subject, gift = INES[n % len(INES)]
    subject = f"{subject} #{n // len(INES) + 1}"
    if n % 2 == 0:
        thread("ines", day, subject, them("offer", gift),
               me("thanks request", "Thanks Ines! Could you send the next one too?"),
               them("offer", "Of course, here it is."))
    else:
        thread("ines", day, subject,
               them("request", "Could you check my bike before Sunday's ride?"),
               me("offer", "Sure, bring it Saturday; I'll true the wheel."),
               them("thanks", "Thank you, it rides perfectly now."))

# --- ordinary contacts --------------------------------------------------------------------
thread("ravi", 70, "Team lunch", them("", "Team lunch moved to Thursday this week."))
thread("ravi", 300, "Shared drive", me("", "The shared drive is back up after maintenance."),
       them("", "Good to know."))
thread("ravi", 600, "Holiday schedule",
       them("", "I'm out from the 20th until the new year."),
       me("", "Noted, enjoy the break."))
thread("lee", 5, "Quick favour",
       them("request", "Sam, can you review my proposal draft before Friday? It's at "
            "docs.example/lee-draft."),
       me("offer", "Done. Comments are in the doc; the pricing section needs the most work."))

# --- cooled: an ally every month of 2023, then one short note a quarter from 2024-Q1 --------
NOOR = [
    ("Slides for the meetup", "your slides from the SDR meetup",
     "here they are: docs.example/sdr."),
    ("Filter design", "a second look at my FIR filter taps", "your taps are fine; widen the "
     "transition band a little and it settles."),
    ("Lab bench", "a loan of your spectrum analyser for a week", "sure, it's packed and "
     "ready; pick it up any evening."),
]
for n, day in enumerate(range(12, 365, 30)):
    subject, ask, answer = NOOR[n % len(NOOR)]
    subject = f"{subject} #{n // len(NOOR) + 1}"
    ask_text, answer_text = f"Could you help me with {ask}?", f"Happy to help: {answer}"
    thanks_text = "Thanks a lot, that was exactly it."
    if n % 2 == 0:
        thread("noor", day, subject, them("request", ask_text), me("offer", answer_text),
               them("thanks", thanks_text))
    else:
        thread("noor", day, subject, me("request", ask_text), them("offer", answer_text),
               me("thanks", thanks_text))
for day, subject in ((400, "Busy months"), (520, "Still here"), (580, "Summer"),
                     (700, "End of year")):
    # Small talk, no proposal in it: "Let's catch up one of these days" and its "Yes"
    # read as an ask to meet and its acceptance under the labelling guide.
    thread("noor", day, subject, them("", "Busy months here, no news really. Talk soon."),
           me("", "Same here, all quiet."),
           them("", "All quiet here too."))
# --- a favour you never returned ----------------------------------------------------------
NOAH = [
    (120, "Grafana dashboards", "Could you send me the Grafana dashboards you built for the "
     "API? I'd like to reuse them.",
     "Here are the dashboard files, ready to import: https://brooks-lab.example/dashboards."),
    (280, "Budget template", "Could you send me the budget template you used for the "
     "platform team? I need it for next year's plan.",
     "Here's my budget template with the formulas: https://brooks-lab.example/budget."),
    (540, "Intro to a recruiter", "Could you introduce me to the recruiter you worked with? "
     "I'm hiring two engineers.",
     "I've introduced you to Mia, our recruiter; her notes are at "
     "https://brooks-lab.example/mia."),
]
for day, subject, ask, answer in NOAH:
    thread("noah", day, subject, me("request", ask), them("offer", answer))
thread("noah", 600, "Tracing notes",
       them("request", "Could you send me your notes on the tracing setup? I'd like to "
            "try it on our cluster."))


def build(mails: list[Mail]) -> dict[str, list[EmailMessage]]:
    folders: dict[str, list[EmailMessage]] = {"INBOX": [], "Sent": []}
    ids = {m.key: f"<{m.key}@sample.mailnet.example>" for m in mails}
    by_key = {m.key: m for m in mails}
    for m in sorted(mails, key=lambda m: m.day):
        msg = EmailMessage()
        msg["From"] = m.sender
        msg["To"] = m.to
        msg["Subject"] = m.subject
        msg["Date"] = format_datetime(START + timedelta(days=m.day))
        msg["Message-ID"] = ids[m.key]
        if m.reply_to:
            chain, parent = [], by_key[m.reply_to]
            while parent:
                chain.insert(0, ids[parent.key])
                parent = by_key.get(parent.reply_to) if parent.reply_to else None
            msg["In-Reply-To"] = ids[m.reply_to]
            msg["References"] = " ".join(chain)
        for name, value in (m.headers or {}).items():
            msg[name] = value
        msg.set_content(m.text + "\n")
        folders["Sent" if m.sender == ME else "INBOX"].append(msg)
    return folders


def message_tags() -> dict[str, tuple[str, ...]]:
    """Message-ID → the tags its text was written to carry (for tests, not the demo)."""
    return {f"{m.key}@sample.mailnet.example": m.tags for m in MAILS}


def write(out: Path = OUT) -> None:
    """Write INBOX.mbox and Sent.mbox into `out`, byte for byte the same on every run."""
    out.mkdir(parents=True, exist_ok=True)
    for folder, messages in build(MAILS).items():
        path = out / f"{folder}.mbox"
        path.unlink(missing_ok=True)
        box = mailbox.mbox(path)
        for msg in messages:
            entry = mailbox.mboxMessage(msg)
            # The envelope date is the message's own, so the output is the same on every run.
            entry.set_from("MAILER-DAEMON", parsedate_to_datetime(msg["Date"]).timetuple())
            box.add(entry)
        box.close()
        print(f"{path}: {len(messages)} messages")


if __name__ == "__main__":
    write()
