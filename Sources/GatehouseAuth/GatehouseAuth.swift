// JWS/JWK verification lives here (issue 3).
import GatehouseCore
