from landfall.cli import app

app()
