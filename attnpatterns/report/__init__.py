"""Reports: the results table (tables), plots and the other report pages."""
