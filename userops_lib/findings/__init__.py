"""Results in words: per analysis, which catalogue messages apply and the numbers that fill them."""
