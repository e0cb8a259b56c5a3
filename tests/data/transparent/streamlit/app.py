"""A Streamlit multipage app whose pages are named like Jupyter server routes."""

import streamlit as st

st.title("Transparent proxy: the main page")
st.write(f"Served for host {st.context.headers.get('host', '?')}")
