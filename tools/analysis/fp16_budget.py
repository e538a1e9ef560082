#!/usr/bin/python3
"""How much of the attention tests' accuracy budget packed fp16 would spend (docs/gpu.md, "Accuracy
budget of packed fp16").

The tests hold every attention output within 1e-3 of the float64 reference (the largest difference
over the largest magnitude, per head, as tools/common/attention_checks.cpp's attention_error
measures it). This simulates, against a float64 reference, the two places attention_vidkv could use
packed fp16 arithmetic:

- score phase: per token the folded terms A_j * code_j (2-bit codes, A_j = q_j s_jg) rounded to fp16
  and summed in fp16 over each pass of 64 key indices, each pass's sum added to an fp32 C;
- value phase: the subset-sum tables (sums of p over a 4-token nibble's tokens) rounded to fp16 and
  each group's 8 nibble terms T[plus] - T[minus] summed in fp16.

Numpy only; fixed seeds, so the printed numbers repeat. Run: /usr/bin/python3 tools/analysis/fp16_budget.py
"""
import numpy as np


def attention_error(out, ref):
    return np.abs(out - ref).max() / np.abs(ref).max()


def score_phase(rng, outlier, T=4096, D=128, G=32, trials=20):
    errors, score_errors = [], []
    for _ in range(trials):
        k = rng.standard_normal((T, D))
        k[:, :8] *= outlier                   # channels with a larger range (anomalous ones)
        k += rng.standard_normal(D) * 2.0     # per-channel offsets (what the group mins absorb)
        v = rng.standard_normal((T, D))
        q = (k[rng.integers(T)] * 0.5 + rng.standard_normal(D)) / np.sqrt(D)  # softmax scale folded in
        g = k.reshape(T // G, G, D)
        mn = g.min(1)
        s = (g.max(1) - mn) / 3
        code = np.clip(np.rint((g - mn[:, None]) / s[:, None]), 0, 3)
        ref = (code * s[:, None] + mn[:, None]).reshape(T, D) @ q        # float64 scores
        terms = ((q * s)[:, None, :] * code).reshape(T, D)              # A_j code_j
        c = np.repeat((q * mn).sum(-1), G)                               # C per token
        t16 = terms.astype(np.float16)
        scores = c.astype(np.float32)
        for p0 in range(0, D, 64):
            acc = np.zeros(T, np.float16)
            for j in range(p0, p0 + 64):
                acc = (acc + t16[:, j]).astype(np.float16)
            scores = scores + acc.astype(np.float32)

        def out(sc):
            p = np.exp(sc - sc.max())
            return (p @ v) / p.sum()

        errors.append(attention_error(out(scores.astype(np.float64)), out(ref)))
        score_errors.append(np.abs(scores - ref).max())
    return np.median(errors), max(errors), max(score_errors)


def value_phase(rng, spread, T=4096, D=128, G=32, trials=10):
    errors = []
    for _ in range(trials):
        sc = rng.standard_normal(T) * spread
        p = np.exp(sc - sc.max())
        trit = rng.integers(-1, 2, (T, D)).astype(np.float64)
        scale = np.abs(rng.standard_normal((T // G, D))) + 0.5
        ref = ((p[:, None] * trit).reshape(T // G, G, D).sum(1) * scale).sum(0) / p.sum()
        out = np.zeros(D)
        for g in range(T // G):
            acc = np.zeros(D, np.float16)
            for n in range(G // 4):
                rows = slice(g * G + 4 * n, g * G + 4 * n + 4)
                plus = (p[rows, None] * (trit[rows] > 0)).sum(0).astype(np.float16)  # fp32 table entries rounded
                minus = (p[rows, None] * (trit[rows] < 0)).sum(0).astype(np.float16)
                acc = (acc + (plus - minus).astype(np.float16)).astype(np.float16)
            out += scale[g] * acc.astype(np.float64)
        errors.append(attention_error(out / p.sum(), ref))
    return np.median(errors), max(errors)


def main():
    rng = np.random.default_rng(1)
    print("budget: attention_error < 1e-3 against float64")
    for outlier in (1.0, 8.0):
        median, worst, score = score_phase(rng, outlier)
        print(f"score phase in fp16, anomalous range x{outlier:g}: output error median {median:.1e}, "
              f"max {worst:.1e}; score error max {score:.3f}")
    rng = np.random.default_rng(2)
    for spread in (1.0, 3.0, 6.0):
        median, worst = value_phase(rng, spread)
        print(f"value tables in fp16, score spread {spread:g}: output error median {median:.1e}, max {worst:.1e}")


if __name__ == "__main__":
    main()
