"""The server side of the OpenAI Files and Batches API: stored jobs fed into the pipeline."""
