#include <cairo/cairo.h>
#include <cairo/cairo-pdf.h>
#include <pango/pangocairo.h>

// Macros Swift cannot import.
static inline int ccairo_pango_scale(void) { return PANGO_SCALE; }
