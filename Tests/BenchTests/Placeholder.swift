// Placeholder so the package resolves until the bench tests land; delete when another file exists here.
