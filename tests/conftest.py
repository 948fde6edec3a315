import matplotlib

matplotlib.use("Agg")  # figures are written to files in the tests, never shown
