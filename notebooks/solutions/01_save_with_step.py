with tf.compat.v1.Session(graph=graph) as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    step_path = saver.save(sess, str(WORKDIR / "my_test_model.ckpt"), global_step=1000)
print(step_path)
print(tf.train.latest_checkpoint(str(WORKDIR)))
