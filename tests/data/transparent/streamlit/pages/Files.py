import streamlit as st

st.title("The Files page")
st.write("Files of the sales team: report.csv, forecast.csv")
