/**
 * `10npay-identification/bullmq`: the {@link FlowCoordinator} that spreads the identification
 * service's work over replicas through BullMQ and Redis. Needs the optional packages `bullmq`
 * and `ioredis` (`npm install bullmq ioredis`).
 */
export { createBullMQCoordinator, stretchJobId } from './bullmqCoordinator.js'
export type { BullMQCoordinatorOptions } from './bullmqCoordinator.js'
export type { RedisConnectionOptions } from './connection.js'
export type { FlowCoordinator, CoordinatorHandlers, FlowChange } from '../server/types.js'
