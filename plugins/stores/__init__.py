"""Built-in gallery stores (plugin kind ``store``): the embedded SQLite + ANN default."""
