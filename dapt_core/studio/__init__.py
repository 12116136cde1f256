"""The app's backend, free of Streamlit: projects on disk (workspace), background jobs (jobs), embedding
maps (projection) and the self-contained HTML report (report)."""
