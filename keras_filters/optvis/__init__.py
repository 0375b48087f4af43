"""The optimization core, backend-neutral: objectives, parameterizations, transforms, the
update, the step and the render loop. Written with `keras.ops`; the backend-specific part (value
and gradient, compiled) lives in `keras_filters.backends`."""
