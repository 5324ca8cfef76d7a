"""Results in pictures: per analysis, chart functions of its Result (titles and labels from the catalogue)."""
