/* SPDX-License-Identifier: Apache-2.0 */
/* pacer-scheduler: the front-end arrives with the scheduler core; until then
 * the library's modules are built and tested on their own. */
#include <stdio.h>

int main(void)
{
        fprintf(stderr, "pacer-scheduler: not assembled yet in this build\n");
        return 1;
}
