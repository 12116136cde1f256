"""The paper-benchmark runner (`dapt bench`): few-shot and domain-generalisation runs and their report tables."""
