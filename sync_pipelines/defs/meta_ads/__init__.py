"""Meta Marketing API: daily campaign metrics of each connected ad account (Insights)."""
