"""``python -m spacetimedb``: the ``spacetime`` command itself, for an environment whose console scripts are not
on PATH (a virtual environment that is not activated, ``pip install --user``). Same arguments, same exit codes."""

from spacetimedb.cli.main import main

if __name__ == "__main__":
    main()
