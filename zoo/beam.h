/* Beam search over any autoregressive decoder, shared by the zoo's models. */
#ifndef CF_ZOO_BEAM_H
#define CF_ZOO_BEAM_H

#include "cformer/tensor.h"

typedef struct {
    /* Writes the log-probabilities [n, vocab] of the next token for the n
     * live hypotheses, whose last tokens are tokens[0..n). */
    cf_status (*step)(void *ud, const int32_t *tokens, int n, float *logp);
    /* Reorders the decoder state: new hypothesis i continues old from[i]. */
    cf_status (*reorder)(void *ud, const int *from, int n);
    void *ud;
    int vocab, bos, eos, pad;
} zoo_decoder;

/* Beam search of width beam from bos, ranking finished hypotheses by
 * log-probability / ((5 + len) / 6)^alpha (GNMT). Writes max_len tokens
 * to out: the best hypothesis after bos, eos included, then pad. */
cf_status zoo_beam_search(const zoo_decoder *d, int beam, float alpha, int max_len, int32_t *out);

#endif
