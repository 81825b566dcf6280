/* SPDX-License-Identifier: Apache-2.0 */
/* bench-libcurl-floor: the memory floor of any program built on libcurl. It
 * initialises libcurl and a multi handle the way pacer-executor does at
 * start-up, prints "ready" and waits to be killed, so that the memory
 * benchmark can put the cost of loading libcurl and its dependency chain
 * beside the executor's own. */
#include <curl/curl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
        CURLM *multi;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "bench-libcurl-floor: curl_global_init failed\n");
                return 1;
        }
        multi = curl_multi_init();
        if (!multi) {
                fprintf(stderr, "bench-libcurl-floor: curl_multi_init failed\n");
                return 1;
        }
        puts("ready");
        fflush(stdout);
        pause();
        curl_multi_cleanup(multi);
        curl_global_cleanup();
        return 0;
}
