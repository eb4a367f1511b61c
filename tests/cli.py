"""Running a ``verify`` CLI in a test: its exit code whether argparse exits or ``main`` returns."""


def exit_code(main, argv) -> int:
    """``main(argv)``'s return value, or the code of the ``SystemExit`` argparse raises on bad flags."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code
