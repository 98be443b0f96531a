"""Retrieval: vectors for a column, a vector index, search, recommendation, zero-shot and metrics."""
from polymodal.retrieval.embed import Embeddings, embed_loaded, embed_table, embedding_space
from polymodal.retrieval.index import KINDS, VectorIndex, model_fingerprint
from polymodal.tasks.ranking import alignment_metrics, rank_of_first_match, retrieval_metrics
from polymodal.retrieval.recommend import more_like_this, recommend
from polymodal.retrieval.search import Searcher, index_column, results_frame
from polymodal.retrieval.zero_shot import zero_shot

__all__ = [
    "Embeddings", "embed_table", "embed_loaded", "embedding_space",
    "VectorIndex", "KINDS", "model_fingerprint",
    "alignment_metrics", "rank_of_first_match", "retrieval_metrics",
    "more_like_this", "recommend",
    "Searcher", "index_column", "results_frame",
    "zero_shot",
]
