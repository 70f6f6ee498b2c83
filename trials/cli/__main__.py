from trials.cli import run

run()
