import streamlit as st

st.title("The Terminals page")
st.write("Terminals in the warehouse: 12 online")
