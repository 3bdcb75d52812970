/**
 * The Kubernetes 1.28 API classes (L1 constructs). `cdk8s import k8s` downloads its schema from
 * GitHub, which these machines cannot reach; cdk8s-plus-28 ships the same generated module, so this
 * file re-exports it and the rest of the code imports from here, as from a generated import.
 */
export * from 'cdk8s-plus-28/lib/imports/k8s.js';
