"""pytest settings for the notebooks, which `make test` re-executes with nbval."""

# nbval waits a fixed 5 s for each output message of a cell once the cell has finished. On a loaded machine
# (CI beside other jobs, 2 cores) the kernel can take longer to flush a progress bar or a figure, and the cell
# then fails with "Timeout of 5 seconds exceeded waiting for output" though nothing is wrong. A cell that truly
# hangs is still stopped by --nbval-cell-timeout (Makefile); this only bounds the wait for output already made.
OUTPUT_WAIT_SECONDS = 600


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's notebook cells (IPyNbCell)
            item.output_timeout = OUTPUT_WAIT_SECONDS
