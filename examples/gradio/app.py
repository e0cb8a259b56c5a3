"""Gradio example: a number computed by the app and a slider that squares."""

import gradio as gr

TOTAL = sum(i * i for i in range(1, 701))


def square(n: float) -> str:
    return f"n squared is {int(n) ** 2}"


with gr.Blocks(title="Gradio example") as demo:
    gr.Markdown(f"# Gradio example\n\nSum of squares 1..700 = {TOTAL}")
    n = gr.Slider(1, 20, value=7, step=1, label="n")
    out = gr.Markdown(square(7))
    n.change(square, n, out)

if __name__ == "__main__":
    demo.launch()
