"""Streamlit example: a number computed by the script and a widget."""

import streamlit as st

TOTAL = sum(i * i for i in range(1, 501))

st.title("Streamlit example")
st.write(f"Sum of squares 1..500 = {TOTAL}")
n = st.slider("n", 1, 20, 7)
st.write(f"n squared is {n * n}")
