graph, v1, v2, total, saver = build_graph_only_v2()
with tf.compat.v1.Session(graph=graph) as sess:
    saver.restore(sess, ckpt_path)
    sess.run(tf.compat.v1.variables_initializer([v1]))  # what the saver does not load
    only_v2_total = sess.run(total)
print(only_v2_total)
