"""Without normals: describe the defect by the deepest tap, l2, only where the weights find a
local defect (docs/RESULTS.md, section 16; the unsupervised default since then).

The deepest tap, l2-normalised, lifts unsupervised MTD to 0.40 but loses whole-image texture
sets (sections 13-15). Whether a set's defects are local shows in its patch scores: with a local
defect an image's largest standardised score stands far out (MTD's median 5.2), without one it
is what the largest of a few hundred noisy scores would be (whole-image textures 3.7-3.9). Here
the set's median of the images' largest standardised unsupervised score (weighting.score_peak)
decides: at or above estimator.LOCAL_PEAK (4.5) the embedding is the deepest tap's part of the
within-image whitened embedding, l2-normalised; below it the embedding of every tap, unnormalised
("default": the default of sections 11-15). Printed per set: the statistic per seed, then
full-set NMI and (subset means) of that default, the deepest tap with l2, and the gated choice
(the tool's default since section 16); seeds 0-2.
The sets: the five study sets, draws 2-5 of the synthetic kinds and the local sets with 5-8
types (synthetic_draws.py).

    PYTHONPATH=src python benchmarks/explore/peak_gate.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studyset
sys.path.insert(0, str(Path(__file__).resolve().parent))  # synthetic_draws
from studyset import SPLIT, compare_embeddings, l2
from synthetic_draws import extra_sets

from anoclust.estimator import LOCAL_PEAK, embedding_whitening, pool_bags
from anoclust.pipeline import ClusterSettings
from anoclust.weighting import score_peak

CFG = ClusterSettings()


def variants(e, space, scores, seed):
    w = embedding_whitening(space, "unsupervised", e.bags, CFG.whiten, CFG.max_bank, seed)
    emb = pool_bags(e.bags, "unsupervised", scores, CFG.tau, CFG.standardize, None, w)[0]
    deep = l2(emb[:, SPLIT:])
    p = score_peak(scores)
    print(f"  peak {p:.2f}", flush=True)
    return {"default": emb, "deepest tap, l2": deep, "gated": deep if p >= LOCAL_PEAK else emb}


if __name__ == "__main__":
    compare_embeddings("unsupervised", variants, extra=extra_sets())
