"""A vocabulary learnt from texts (WordPiece, BPE or word level), the same on every run.

``tokenizers``' own WordPiece trainer numbers the ``##`` pieces as it meets them in a Rust
hash map, whose order differs per process (and per map), and breaks ties between equally
frequent pairs by those numbers: a different vocabulary, so a different model, on each fit.
Here the same byte-pair merges are computed in a canonical order; ``tokenizers`` still does
the normalising, pre-tokenising and tokenizing. BPE and word-level vocabularies equal the
library trainers' (which are deterministic).
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from typing import Sequence

from tokenizers import Tokenizer, models

__all__ = ["learn_vocabulary"]


def _word_counts(tokenizer: Tokenizer, texts: Sequence[str]) -> Counter[str]:
    """How often each word occurs after the tokenizer's normaliser and pre-tokeniser."""
    normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    counts: Counter[str] = Counter()
    for text in texts:
        words = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(word for word, _ in words)
    return counts


def _merge(symbols: tuple[int, ...], a: int, b: int, new: int) -> tuple[int, ...]:
    """``symbols`` with every non-overlapping ``a b`` (left to right) replaced by ``new``."""
    out, i, n = [], 0, len(symbols)
    while i < n:
        if i + 1 < n and symbols[i] == a and symbols[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def _learn_merges(
    counts: Counter[str], vocab_size: int, min_frequency: int, specials: list[str], prefix: str
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-pair merges over word counts, as ``tokenizers``' BPE trainer: ``(vocab, merges)``.

    Words and characters are taken in sorted order, and a tie between equally frequent
    pairs goes to the pair of lower ids, as in the library; every occurrence of the chosen
    pair is merged at once.

    Args:
        counts: word → occurrences.
        vocab_size: stop once the vocabulary (specials included) has this many tokens.
        min_frequency: stop once the most frequent pair occurs fewer times.
        specials: the first ids.
        prefix: marks a piece that continues a word (``"##"`` for WordPiece, ``""`` for BPE).
    """
    words = sorted(counts)
    alphabet = sorted({c for word in words for c in word})
    inner = sorted({c for word in words for c in word[1:]}) if prefix else []
    tokens = list(dict.fromkeys([*specials, *alphabet, *(prefix + c for c in inner)]))
    ids = {token: i for i, token in enumerate(tokens)}
    split = [tuple(ids[c if i == 0 else prefix + c] for i, c in enumerate(w)) for w in words]
    freq = [counts[w] for w in words]

    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair → words that held it
    for i, symbols in enumerate(split):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += freq[i]
            where[pair].add(i)
    heap = [(-n, a, b) for (a, b), n in pair_counts.items()]  # most frequent, then lowest ids
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while len(ids) < vocab_size and heap:
        negative, a, b = heapq.heappop(heap)
        n = pair_counts[a, b]
        if n != -negative:  # stale entry: the pair's count fell since it was pushed
            if n > 0:
                heapq.heappush(heap, (-n, a, b))
            continue
        if n < min_frequency:
            break
        right = tokens[b][len(prefix):] if prefix and tokens[b].startswith(prefix) else tokens[b]
        token = tokens[a] + right
        if token not in ids:
            ids[token] = len(tokens)
            tokens.append(token)
        merges.append((tokens[a], tokens[b]))
        delta: dict[tuple[int, int], int] = defaultdict(int)
        for i in sorted(where.pop((a, b), ())):
            old = split[i]
            new = _merge(old, a, b, ids[token])
            if len(new) == len(old):
                continue
            for pair in zip(old, old[1:]):
                delta[pair] -= freq[i]
            for pair in zip(new, new[1:]):
                delta[pair] += freq[i]
                where[pair].add(i)
            split[i] = new
        for pair, change in delta.items():
            pair_counts[pair] += change
            if change > 0:
                heapq.heappush(heap, (-pair_counts[pair], *pair))
    return ids, merges


def learn_vocabulary(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    kind: str,
    vocab_size: int,
    min_frequency: int,
    special_tokens: Sequence[str],
    unk_token: str,
) -> None:
    """Give ``tokenizer`` a ``kind`` model learnt from ``texts``, identical on every run.

    Args:
        tokenizer: its normaliser and pre-tokeniser split the texts into words.
        kind: ``"wordpiece"``, ``"bpe"`` or ``"word"``.
        vocab_size: at most this many tokens, ``special_tokens`` included.
        min_frequency: a merge (or, for ``"word"``, a word) needs this many occurrences.
        special_tokens: ids ``0 .. len - 1``, added to ``tokenizer`` as special tokens.
        unk_token: one of ``special_tokens``.
    """
    specials = list(special_tokens)
    counts = _word_counts(tokenizer, texts)
    if kind == "word":
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))  # like the library
        kept = [w for w, n in ranked if n >= min_frequency]
        vocab = list(dict.fromkeys([*specials, *kept]))[:vocab_size]
        tokenizer.model = models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token=unk_token)
    elif kind == "wordpiece":
        ids, _ = _learn_merges(counts, vocab_size, min_frequency, specials, prefix="##")
        tokenizer.model = models.WordPiece(ids, unk_token=unk_token, continuing_subword_prefix="##")
    elif kind == "bpe":
        ids, merges = _learn_merges(counts, vocab_size, min_frequency, specials, prefix="")
        tokenizer.model = models.BPE(ids, merges, unk_token=unk_token)
    else:
        raise ValueError(f"kind must be 'wordpiece', 'bpe' or 'word'. Got {kind!r} instead.")
    tokenizer.add_special_tokens(specials)
