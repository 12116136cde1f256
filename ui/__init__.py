"""App-only helpers for DAPT Studio's Streamlit pages: strings, session state, charts, widgets."""
