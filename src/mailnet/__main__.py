from mailnet.cli import main

main()
