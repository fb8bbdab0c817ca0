"""What exhibitors come for, measured: the append-only event log of booth activity, its
aggregations, heatmaps and reports."""
