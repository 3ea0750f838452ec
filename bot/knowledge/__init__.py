"""The knowledge base at answer time: search (jieba + BM25), confidence bands, reply shape."""
