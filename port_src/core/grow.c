/* grow.c - see grow.h. */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

void *grow(void *buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return buf;
    size_t size = *cap ? *cap : first;
    while (size < need) {
        if (size > SIZE_MAX / 2)
            return NULL;
        size *= 2;
    }
    void *grown = realloc(buf, size);
    if (grown != NULL)
        *cap = size;
    return grown;
}

void *grow_array(void *arr, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return arr;
    if (elem == 0 || need > SIZE_MAX / elem)
        return NULL;
    size_t bytes = *cap * elem;
    void *grown = grow(arr, &bytes, need * elem, first * elem);
    if (grown != NULL)
        *cap = bytes / elem;
    return grown;
}
