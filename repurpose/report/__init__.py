"""The benchmark report: figures (`figures`), a small document model rendered as Markdown and
self-contained HTML (`render`), and its assembly from the pipeline's outputs (`build`)."""
