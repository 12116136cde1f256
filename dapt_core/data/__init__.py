"""Where labelled images come from: the records that flow into training (records), image intake and
decoding (images), class folders (folders), seeded few-shot draws (fewshot) and the paper's benchmark
data sets (datasets)."""
