"""The engine: cell -> function, plan, run, cluster, monitor. No IPython, no widgets in here."""
