/* SPDX-License-Identifier: Apache-2.0 */
/* Aligned columns for the human output of lists (apps, tasks, deployments):
 * cells are copied sanitized and capped, widths are computed from what is
 * shown, a cell may carry a colour that does not count towards its width. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "term.h"

/* A cell longer than this (bytes, after sanitizing) is cut with "...". */
#define TABLE_CELL_MAX 200
/* Space between columns. */
#define TABLE_GAP 2

typedef struct Table Table;

/* headers: n_columns strings. NULL on allocation failure. */
Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
/* Appends a row of n_columns cells (NULL prints as "-", "" as nothing); -ENOMEM. */
int table_add_row(Table *t, const char *const *cells);
/* Colours one cell of the last row. */
void table_color_cell(Table *t, size_t column, TermColor color);
size_t table_rows(const Table *t);
/* Header and rows; the last column is not padded. */
void table_print(const Table *t, FILE *f, bool color);
