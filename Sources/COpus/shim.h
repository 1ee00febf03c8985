#include <ogg/ogg.h>
#include <opus.h>

/* The decoder's control calls are variadic macros, which Swift cannot import. */
static inline int lasr_opus_set_gain(OpusDecoder *decoder, int gain_q8) {
    return opus_decoder_ctl(decoder, OPUS_SET_GAIN(gain_q8));
}
