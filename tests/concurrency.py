"""Run one function in many threads at once, each with its own database connection."""

import threading

from django.db import connection


def run_together(fn, arguments: list) -> tuple[list, list]:
    """Start fn(argument) in one thread per argument behind a barrier; return (results, errors)."""
    barrier = threading.Barrier(len(arguments))
    results, errors = [], []

    def worker(argument):
        try:
            barrier.wait()
            results.append(fn(argument))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
