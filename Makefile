# The two commands a newcomer needs (see README.md).
.PHONY: app test setup

setup:
	bash scripts/setup.sh

app: setup
	.venv/bin/streamlit run app.py

test: setup
	bash scripts/browser.sh
	bash scripts/test_provider.sh
	.venv/bin/ruff check .
	.venv/bin/python -m pytest
