from shapehint.cli import app

app()
