"""Plotting layer (placeholder until the plotting issue lands): the shipped style, used by name."""

#: The package's matplotlib style, usable by name: ``plt.style.use(rv.plotting.STYLE)``.
STYLE = "rivervalley.styles.paper"
