/**
 * `10npay-identification/testing`: model-based tests of your own app against the chart. Paths
 * through the chart (`modelPaths`, with `@xstate/graph` as a peer), the provider a path needs
 * (`createPathProvider`: an in-process simulator, an API on it, a simulated clock), and a driver
 * that makes the path happen in your app and checks every step (`runPath`). Node only.
 */
export { testMachine, modelPaths, isHostEvent } from './paths.js'
export type { ModelPath, ModelStep, ModelPathOptions } from './paths.js'
export { planPath, createPathProvider, runPath } from './pathProvider.js'
export type { PathPlan, PathProvider, PathProviderOptions, PathDriver, Click } from './pathProvider.js'
export { MemoryStorage } from './memoryStorage.js'
export { createRouteDriver } from './routeDriver.js'
export type { RouteDriverOptions } from './routeDriver.js'
export { createModelOptions, modelEvents, serializeModelState } from '../machine/model.js'
export type { ModelOptions } from '../machine/model.js'
