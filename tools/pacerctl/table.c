/* SPDX-License-Identifier: Apache-2.0 */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "macro.h"

typedef struct Cell {
        char *text;
        TermColor color;
} Cell;

struct Table {
        size_t n_columns;
        size_t n_rows; /* the header is row 0 */
        size_t allocated;
        Cell *cells; /* n_rows * n_columns */
};

static int table_append(Table *t, const char *const *cells)
{
        size_t n = t->n_columns;

        if (t->n_rows == t->allocated) {
                size_t more = t->allocated ? t->allocated * 2 : 16;
                Cell *c = reallocarray(t->cells, more * n, sizeof(Cell));
                if (!c)
                        return -ENOMEM;
                t->cells = c;
                t->allocated = more;
        }
        for (size_t i = 0; i < n; i++) {
                Buf b = BUF_INIT(TABLE_CELL_MAX + 8);
                const char *s = cells[i] ? cells[i] : "-";
                int r = term_sanitize(&b, s, TABLE_CELL_MAX);

                if (r < 0) {
                        buf_done(&b);
                        for (size_t k = 0; k < i; k++)
                                free(t->cells[t->n_rows * n + k].text);
                        return r;
                }
                t->cells[t->n_rows * n + i] = (Cell){ .text = buf_steal(&b, NULL) };
        }
        t->n_rows++;
        return 0;
}

Table *table_new(size_t n_columns, const char *const *headers)
{
        Table *t;

        if (n_columns == 0)
                return NULL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        if (table_append(t, headers) < 0)
                return table_free(t);
        return t;
}

Table *table_free(Table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
                free(t->cells[i].text);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add_row(Table *t, const char *const *cells)
{
        return table_append(t, cells);
}

void table_color_cell(Table *t, size_t column, TermColor color)
{
        if (t->n_rows < 2 || column >= t->n_columns)
                return;
        t->cells[(t->n_rows - 1) * t->n_columns + column].color = color;
}

size_t table_rows(const Table *t)
{
        return t->n_rows - 1;
}

void table_print(const Table *t, FILE *f, bool color)
{
        _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(size_t));

        if (!width)
                return;
        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++)
                        width[c] = MAX(width[c], term_text_width(t->cells[r * t->n_columns + c].text));
        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        const Cell *cell = &t->cells[r * t->n_columns + c];
                        bool last = c + 1 == t->n_columns;
                        bool paint = color && cell->color != TERM_COLOR_NONE;

                        fprintf(f, "%s%s%s", paint ? term_color_on(cell->color) : "", cell->text,
                                paint ? term_color_off() : "");
                        if (!last)
                                fprintf(f, "%*s", (int)(width[c] - term_text_width(cell->text) + TABLE_GAP),
                                        "");
                }
                fputc('\n', f);
        }
}
