"""Making a model: the corpora (`corpora`), speaker/corpus/language splits (`splits`), features of
many clips (`dataset`, `embeddings`, and Parquet feature shards for a cluster in `shards`),
augmentation (`augment`), the networks (`model`), training (`train`), evaluation and its metrics
(`evaluate`, `metrics`) and the LiteRT export (`export`).

The only place TensorFlow/Keras is imported at build time. May import everything below it
(io, frontend, serving, distributed's inputs and engine); nothing in serving imports it."""
