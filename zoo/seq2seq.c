#include "cformer/zoo.h"
