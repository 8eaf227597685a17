from dbkeeper.cli import run

run()
