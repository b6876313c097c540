#include "autograd/internal.h"
